"""The training-hour (学时) ledger, annual targets and exports."""
