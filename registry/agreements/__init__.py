"""Annual cooperation agreements (年度协作协议), their indicators and targets, and 完成率 computed from records."""
