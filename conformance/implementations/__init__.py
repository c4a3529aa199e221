"""Adapters of the built-in implementations, and the deviations declared for each.

- `SchedulerAdapter` (`scheduler.py`): the adapter protocol on top of any scheduler class
  with diffusers' API, the base of the three below;
- `reference`: the float64 numpy reference (`numpy_adapter.py`);
- `torch`: the project's torch implementation (`torch_adapter.py`);
- `diffusers`: diffusers' own class (`diffusers_adapter.py`, deviations in
  `diffusers_deviations.py`).
"""

#: Built-in names for `--impl`, each the "module:attr" of a factory returning an Adapter.
BUILTINS = {
    "reference": "conformance.implementations.numpy_adapter:reference_adapter",
    "torch": "conformance.implementations.torch_adapter:torch_reference_adapter",
    "diffusers": "conformance.implementations.diffusers_adapter:diffusers_adapter",
}

#: Where each built-in declares its deviations ("module:attr"; None: none), read by
#: `conformance.harness.loading.declared_by` without importing the implementation (diffusers'
#: need neither diffusers nor torch to be read).
DECLARED_DEVIATIONS = {
    "reference": None,
    "torch": None,
    "diffusers": "conformance.implementations.diffusers_deviations:DEVIATIONS",
}
