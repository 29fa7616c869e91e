"""Redis: workflow versions, the async inbox (one stream per workflow), and the
execution log. Key names live in `store.keys` only."""
