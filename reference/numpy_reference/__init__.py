"""The paper's float64 numpy reference: a reader can hold it next to "Consistency Models".

- `formulas`: one function per formula (schedule, scalings, consistency function, noise scale);
- `algorithm1`: Algorithm 1, multistep consistency sampling, as a function;
- `editing`: Algorithm 4, zero-shot editing;
- `scheduler`: diffusers' `CMStochasticIterativeScheduler` API on `formulas`, with its host-side
  `bookkeeping`, argument `validation` and `step_output`, which the torch scheduler shares.
"""
