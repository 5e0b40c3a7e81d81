"""Report: from per-item results to the tables, figures and analyses the notebooks show, each with provenance.

`tables` (per-item frames of several runs -> values with 95% CIs, claim checks), `analysis` (failure analysis),
`plots` (matplotlib figures), `artifacts` (CSV + markdown tables, PNG + SVG figures, written atomically),
`provenance` (what produced an artifact), `datasummary` (tables that describe a dataset), `retrieval_report`
(`haca score-retrieval`: the numbers of a user's own retrieval scores), `reported` (published numbers, with
their sources, beside our pretrained row).

May import: `hacalib.metrics`, `hacalib.data`, `hacalib.errors`, `hacalib.io`, `hacalib.prompts`. Never a model.
"""
