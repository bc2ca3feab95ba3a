"""科学素质自测 (issue 14): an item pool under content/assessment/, timed sittings, per-dimension scores,
and the county's report of the share above the threshold with its confidence interval."""
