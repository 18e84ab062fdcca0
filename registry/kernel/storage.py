"""Where stored files (evidence attachments) live: a folder under ``instance/`` by default, an S3-compatible bucket
when ``EVIDENCE_S3_BUCKET`` is set. One small interface, so services never know which.

Keys are made here (``new_key``: 32 random hex digits) and checked on every call, so no name a user typed ever
reaches a path or an object key. Credentials for S3 come from the environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, or the usual boto3 chain), never from the database or the configuration file.
"""

import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from flask import current_app

KEY = re.compile(r"^[0-9a-f]{32}$")


class StorageError(Exception):
    """A key that was not made by ``new_key``, or an object that is not there."""


def new_key() -> str:
    return secrets.token_hex(16)


def _checked(key: str) -> str:
    if not isinstance(key, str) or not KEY.match(key):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...


class LocalStorage:
    """Files in one folder (``instance/files/evidence`` by default; the backup copies ``instance/files`` whole),
    fanned out by the key's first two digits, written mode 600 through a temporary name and a rename."""

    def __init__(self, root):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        key = _checked(key)
        return self.root / key[:2] / key

    def put(self, key, data, content_type):
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)

    def get(self, key):
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"no stored file {key}") from exc

    def delete(self, key):
        self._path(key).unlink(missing_ok=True)

    def exists(self, key):
        return self._path(key).is_file()


class S3Storage:
    """Objects in an S3-compatible bucket (MinIO, Ceph, a cloud's), under ``prefix``."""

    def __init__(self, bucket, *, endpoint_url=None, prefix="evidence/", region=None):
        import boto3  # deferred: only deployments that configure a bucket need boto3 loaded

        self.bucket, self.prefix = bucket, prefix
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None)

    def _name(self, key):
        return self.prefix + _checked(key)

    def put(self, key, data, content_type):
        self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data, ContentType=content_type)

    def get(self, key):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"].read()
        except self.client.exceptions.NoSuchKey as exc:
            raise StorageError(f"no stored object {key}") from exc

    def delete(self, key):
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def exists(self, key):
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except self.client.exceptions.ClientError:
            return False
        return True


def evidence_storage(app=None) -> Storage:
    """The app's storage of evidence files, made once per app from its configuration."""
    app = app or current_app
    storage = app.extensions.get("evidence_storage")
    if storage is None:
        bucket = app.config.get("EVIDENCE_S3_BUCKET")
        if bucket:
            storage = S3Storage(
                bucket,
                endpoint_url=app.config.get("EVIDENCE_S3_ENDPOINT_URL"),
                prefix=app.config.get("EVIDENCE_S3_PREFIX", "evidence/"),
                region=app.config.get("EVIDENCE_S3_REGION"),
            )
        else:
            storage = LocalStorage(app.config.get("EVIDENCE_FOLDER") or Path(app.instance_path, "files", "evidence"))
        app.extensions["evidence_storage"] = storage
    return storage
