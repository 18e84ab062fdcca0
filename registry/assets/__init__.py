"""Project assets (项目资产): the register, who owns and looks after each asset, its yearly checks and state."""
