"""长辈版 (elder mode): preferences, 继续学习, help page, per-question quiz checking."""
