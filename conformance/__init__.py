"""The conformance suite for consistency-model sampling schedulers.

Run it against an implementation with `pytest conformance --impl=NAME` from a checkout
or `pytest --pyargs conformance --impl=NAME` once installed. The clauses are in
`conformance/SPEC.md`; the adapter protocol in `conformance.adapter`.
"""

__version__ = "0.1.0"
