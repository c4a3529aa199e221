"""The torch implementation of the scheduler, for GPUs, built on the numpy reference's host
side (`reference.numpy_reference.bookkeeping`, `formulas`).

- `scheduler`: `CMStochasticIterativeScheduler` in torch (does not import diffusers);
- `diffusers_scheduler`: the same class as a diffusers scheduler (`SchedulerMixin`,
  `ConfigMixin`), the drop-in for `ConsistencyModelPipeline`;
- `schedule` (the per-step table), `lookup` (model time to step), `noise` (the draw z),
  `checks` (argument checks on host metadata).
"""
