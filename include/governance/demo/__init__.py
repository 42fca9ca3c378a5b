"""The demo feed and its scoring, outside the core's import path: generators of review feeds
with injected defects whose ground truth is known, and the harness that scores a published
version against that truth. Nothing in the nightly pipeline imports from here."""
