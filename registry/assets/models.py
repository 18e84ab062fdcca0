"""An asset formed by assistance projects (国办函〔2021〕51号): class, value by fund source, owner, 管护主体 and
责任人, operation and income, state with dated changes, and the yearly 管护 checks. Money in 分."""

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.evidence import attachable
from registry.kernel.database import TimestampMixin, UTCDateTime, VersionedMixin, enum_column, utcnow
from registry.kernel.extensions import db
from registry.kernel.labels import LabelledEnum
from registry.kernel.money import yuan
from registry.kernel.scoping import RecordScope
from registry.kernel.workflow import Opinion, Transition, Workflow
from registry.permissions import write_gate


class AssetClass(LabelledEnum):
    OPERATING = "operating"
    PUBLIC = "public"
    HOUSEHOLD = "household"


AssetClass.LABELS = {AssetClass.OPERATING: "经营性", AssetClass.PUBLIC: "公益性", AssetClass.HOUSEHOLD: "到户类"}


class OwnerLevel(LabelledEnum):
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"
    HOUSEHOLD = "household"


OwnerLevel.LABELS = {
    OwnerLevel.COUNTY: "县",
    OwnerLevel.TOWNSHIP: "乡镇",
    OwnerLevel.VILLAGE: "村集体",
    OwnerLevel.HOUSEHOLD: "户",
}


class OperationMode(LabelledEnum):
    SELF = "self"
    LEASE = "lease"
    EQUITY = "equity"
    ENTRUSTED = "entrusted"


OperationMode.LABELS = {
    OperationMode.SELF: "自营",
    OperationMode.LEASE: "租赁",
    OperationMode.EQUITY: "入股",
    OperationMode.ENTRUSTED: "委托",
}


class AssetState(LabelledEnum):
    NORMAL = "normal"
    IDLE = "idle"
    INEFFICIENT = "inefficient"
    DAMAGED = "damaged"
    DISPOSED = "disposed"


AssetState.LABELS = {
    AssetState.NORMAL: "正常",
    AssetState.IDLE: "闲置",
    AssetState.INEFFICIENT: "低效",
    AssetState.DAMAGED: "损毁",
    AssetState.DISPOSED: "已处置",
}


def _state_change(asset, _transition, before, actor, note: str, on) -> "AssetStateChange":
    row = AssetStateChange(asset=asset, from_state=before, to_state=asset.state, changed_on=on, note=note,
                           actor_id=getattr(actor, "id", None))  # fmt: skip
    db.session.add(row)
    return row


def _change_to(target: AssetState) -> Transition:
    """变更为 ``target``: from any state but itself and 已处置 (final), dated, with its reason; by its writers."""

    def wrong(state):
        return "资产已处置，不能再变更状态。" if state is AssetState.DISPOSED else f"资产当前已是“{target.label}”。"

    return Transition(
        target.value, f"变更为{target.label}", sources=frozenset(AssetState) - {AssetState.DISPOSED, target},
        to=target, may=write_gate, wrong_state=wrong, wrong_field="to_state", audit="status",
        opinion=Opinion("状态变更的原因", field="note", limit=500, missing="请说明状态变更的原因。"),
    )  # fmt: skip


#: An asset's states: registered 正常, then dated changes (``asset_state_changes``) until 已处置.
WORKFLOW = Workflow(
    "asset", AssetState, step=_state_change,
    transitions=[Transition("register", "登记资产", to=AssetState.NORMAL), *map(_change_to, AssetState)],
)  # fmt: skip


class Condition(LabelledEnum):
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"


Condition.LABELS = {Condition.GOOD: "良好", Condition.FAIR: "一般", Condition.POOR: "较差"}


@attachable  # 确权证明, 移交清单, photos
class Asset(TimestampMixin, VersionedMixin, db.Model):
    """One asset in the register; it lies in its county and under the pairing its project came from."""

    #: What the audit trail calls a record of this type (a problem's link to it).
    __audit_label__ = "项目资产"

    @classmethod
    def audit_text(cls, field: str, value) -> str | None:
        """The audit trail's text of ``sources`` ([项目编号, 东部 分, 其他 分] per source project)."""
        if field != "sources" or not isinstance(value, list):
            return None
        rows = [v for v in value if isinstance(v, list) and len(v) == 3]
        return "；".join(f"{code}（东部财政援助资金 {yuan(east)} 元，其他资金 {yuan(other)} 元）"
                        for code, east, other in rows) or "（空）"  # fmt: skip

    __scope__ = RecordScope(county="county_id", pairing="pairing_id", write="projects.edit", noun="项目资产")

    __tablename__ = "assets"
    __table_args__ = (
        sa.CheckConstraint("original_value_fen >= 0", name="value_positive"),
        sa.CheckConstraint("east_fen >= 0 AND other_fen >= 0", name="shares_positive"),
        sa.CheckConstraint("east_fen + other_fen = original_value_fen", name="shares_sum"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint(
            "annual_income_fen >= 0 AND to_households_fen >= 0 AND to_collective_fen >= 0", name="income_positive"
        ),
        sa.CheckConstraint("to_households_fen + to_collective_fen <= annual_income_fen", name="income_distributed"),
        sa.CheckConstraint("handed_over_on IS NULL OR handed_over_on >= completed_on", name="handover_after_done"),
        sa.CheckConstraint("(state = 'disposed') = (disposed_on IS NOT NULL)", name="disposal_dated"),
        WORKFLOW.state_check(),
        sa.Index("ix_assets_county_class", "county_id", "asset_class"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: 资产编号, unique, e.g. ZC-513431-2024-003-01.
    number: Mapped[str] = mapped_column(sa.String(50), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    asset_class: Mapped[AssetClass] = mapped_column(enum_column(AssetClass, 20), index=True)
    quantity: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2), default=1)
    quantity_unit: Mapped[str] = mapped_column(sa.String(20), default="项")
    #: 原值 and its shares by fund source: 东部财政援助 and everything else.
    original_value_fen: Mapped[int] = mapped_column(sa.BigInteger)
    east_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    other_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    county_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    township_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"))
    village_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"))
    location: Mapped[str] = mapped_column(sa.String(200), default="")
    #: The pairing (and so the programme) the asset came from; stays after the pairing ended (粤川 → 浙川).
    pairing_id: Mapped[int] = mapped_column(sa.ForeignKey("pairings.id"), index=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), index=True)
    completed_on: Mapped[date]
    #: 移交 date; empty until the asset is handed over to its owner.
    handed_over_on: Mapped[date | None]
    owner_level: Mapped[OwnerLevel] = mapped_column(enum_column(OwnerLevel, 20), index=True)
    #: The owning unit (县/乡镇/村集体) or the named households.
    owner_name: Mapped[str] = mapped_column(sa.String(500))
    #: 管护主体 and 管护责任人.
    caretaker: Mapped[str] = mapped_column(sa.String(200))
    caretaker_person: Mapped[str] = mapped_column(sa.String(50))
    caretaker_phone: Mapped[str] = mapped_column(sa.String(30), default="")
    operation_mode: Mapped[OperationMode] = mapped_column(enum_column(OperationMode, 20))
    #: The latest year's income and how it was distributed.
    income_year: Mapped[int | None]
    annual_income_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    to_households_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    to_collective_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    state: Mapped[AssetState] = mapped_column(enum_column(AssetState, 20), default=AssetState.NORMAL, index=True)
    #: Disposal record (state 已处置): when, how, by whose decision, what it brought.
    disposed_on: Mapped[date | None]
    disposal_method: Mapped[str] = mapped_column(sa.String(200), default="")
    disposal_decision: Mapped[str] = mapped_column(sa.String(200), default="")
    disposal_proceeds_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: 待核实: created from a legacy project by ``flask assets from-projects``; the office confirms it.
    needs_review: Mapped[bool] = mapped_column(default=False, index=True)
    #: When a 待核实 record was confirmed (核实): a report as of an earlier day still counts it as 待核实.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(sa.Text, default="")

    county: Mapped["Unit"] = relationship(foreign_keys=[county_id])  # noqa: F821
    township: Mapped["Unit | None"] = relationship(foreign_keys=[township_id])  # noqa: F821
    village: Mapped["Unit | None"] = relationship(foreign_keys=[village_id])  # noqa: F821
    pairing: Mapped["Pairing"] = relationship()  # noqa: F821
    programme: Mapped["Programme"] = relationship()  # noqa: F821
    sources: Mapped[list["AssetSource"]] = relationship(
        back_populates="asset", order_by="AssetSource.project_id", cascade="all, delete-orphan"
    )
    state_changes: Mapped[list["AssetStateChange"]] = relationship(
        back_populates="asset", order_by="AssetStateChange.id", cascade="all, delete-orphan"
    )
    checks: Mapped[list["AssetCheck"]] = relationship(
        back_populates="asset", order_by="(AssetCheck.checked_on, AssetCheck.id)", cascade="all, delete-orphan"
    )

    AUDIT_LABELS = {
        "number": "资产编号",
        "name": "资产名称",
        "asset_class": "资产类别",
        "quantity": "数量",
        "quantity_unit": "计量单位",
        "original_value_fen": "原值",
        "east_fen": "其中东部财政援助",
        "other_fen": "其中其他资金",
        "county_id": "所在县",
        "township_id": "乡镇",
        "village_id": "村",
        "location": "坐落位置",
        "pairing_id": "结对关系",
        "programme_id": "协作类型",
        "completed_on": "竣工日期",
        "handed_over_on": "移交日期",
        "owner_level": "确权层级",
        "owner_name": "所有权人",
        "caretaker": "管护主体",
        "caretaker_person": "管护责任人",
        "caretaker_phone": "联系电话",
        "operation_mode": "运营方式",
        "income_year": "收益年度",
        "annual_income_fen": "年收益",
        "to_households_fen": "分配给脱贫户",
        "to_collective_fen": "分配给村集体",
        "state": "状态",
        "disposed_on": "处置日期",
        "disposal_method": "处置方式",
        "disposal_decision": "处置决策",
        "disposal_proceeds_fen": "处置收入",
        "needs_review": "待核实",
        "note": "备注",
        "sources": "来源项目（项目编号、东部财政援助、其他资金，分）",
    }

    def __str__(self):
        return f"{self.number} {self.name}"


class AssetSource(db.Model):
    """The project an asset was formed from, with the money of each fund source that went into it."""

    __tablename__ = "asset_sources"
    __table_args__ = (sa.CheckConstraint("east_fen >= 0 AND other_fen >= 0", name="amounts_positive"),)

    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), primary_key=True, index=True)
    east_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    other_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    asset: Mapped[Asset] = relationship(back_populates="sources")


class AssetStateChange(db.Model):
    """One dated change of an asset's state (append-only; the audit log has the same event)."""

    __tablename__ = "asset_state_changes"
    __table_args__ = (WORKFLOW.state_check("to_state"), WORKFLOW.state_check("from_state", nullable=True))

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[AssetState | None] = mapped_column(enum_column(AssetState, 20))
    to_state: Mapped[AssetState] = mapped_column(enum_column(AssetState, 20))
    changed_on: Mapped[date]
    note: Mapped[str] = mapped_column(sa.Text, default="")
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    asset: Mapped[Asset] = relationship(back_populates="state_changes")


@attachable(follows="asset", date="checked_on", noun="管护检查")  # the check's photos and record
class AssetCheck(db.Model):
    """A yearly 管护 check: when, in what condition, what problems were found."""

    __tablename__ = "asset_checks"
    __table_args__ = (sa.Index("ix_asset_checks_asset_date", "asset_id", "checked_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("assets.id", ondelete="CASCADE"))
    checked_on: Mapped[date]
    condition: Mapped[Condition] = mapped_column(enum_column(Condition, 20))
    problems: Mapped[str] = mapped_column(sa.Text, default="")
    checker: Mapped[str] = mapped_column(sa.String(50), default="")
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    asset: Mapped[Asset] = relationship(back_populates="checks")

    AUDIT_LABELS = {"checked_on": "检查日期", "condition": "状况", "problems": "问题", "checker": "检查人"}
