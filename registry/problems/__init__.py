"""整改台账: problems found (考核, 审计, 自查…), their rectification, progress and 双销号."""
