"""Redis: workflow versions, the async inbox (one stream per workflow), and the
execution log; and the SQL history. The only door to Redis: the other packages
call these store objects and catch `store.errors.StoreError`. Key names live in
`store.keys` only."""
