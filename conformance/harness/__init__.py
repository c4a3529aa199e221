"""The harness: how the clause modules run, set apart from them (as array-api-tests sets its
helpers apart from its tests).

- `plugin`: the pytest plugin, options and hooks only;
- `entry_point`: the `pytest11` entry point, registering the plugin only in sessions that
  target the suite;
- `activation`: whether a session targets the suite, loading the implementation, the matrix,
  failing closed on what was asked for and cannot be tested;
- `loading`: `--impl=NAME` to an adapter; `claims`: an adapter's claims probed at start-up;
- `fixtures`: the clause modules' fixtures; `timeout`: the time limit of each test;
- `records`: each test phase classified into one typed `Outcome`; `report`: the table and the
  JSON report built from records alone (`report_schema.json`); `run_info`: the run's context;
- `failures`: the block a failing clause prints; `markdown`: the summary for a CI job's page
  (`--conformance-markdown`); `plot`: worst error / bound per cell as a picture, from the JSON
  report (`python -m conformance.harness.plot`).
"""
