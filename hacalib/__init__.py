"""hacalib: the library behind the HACA companion notebooks.

Imports point one way: notebooks and the CLI call `train`, `score`, `report`; those call the
small leaf modules (`video`, `prompts`, `masking`, `packing`, `metrics`, `config`, `data`).
"""

__version__ = "0.1.0"
