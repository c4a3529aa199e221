"""Known deviations of diffusers' `CMStochasticIterativeScheduler` (diffusers 0.42.1) from
conformance/SPEC.md, each with the figure measured by this suite and the reason.

Filled in from measurements; see the report of `pytest conformance --impl=diffusers`.
"""

from __future__ import annotations

from conformance.deviations import Deviation

DEVIATIONS: tuple[Deviation, ...] = ()
