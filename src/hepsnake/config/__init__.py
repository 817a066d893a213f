"""The workflow config: read and validated once (:mod:`.loading`, :mod:`.schema`,
:mod:`.samples`, :mod:`.checks`), then cut into the typed contract of each stage."""

from hepsnake.config.checks import check_prepare, label_intervals
from hepsnake.config.loading import (
    config_hash,
    load,
    load_model,
    load_tune,
    read_mapping,
    read_model,
    read_yaml,
    scan_parameters,
    stage_config,
    validate,
    workflow_config,
)
from hepsnake.config.samples import (
    expand_files,
    load_samples,
    parse_params,
    sample_by_name,
    samples_with_role,
)
from hepsnake.config.schema import MODEL_SCHEMA, SCHEMA, TUNE_SCHEMA, check_schema, schema_validator
from hepsnake.io.remote import is_remote

__all__ = [
    "MODEL_SCHEMA",
    "SCHEMA",
    "TUNE_SCHEMA",
    "check_prepare",
    "check_schema",
    "config_hash",
    "expand_files",
    "is_remote",
    "label_intervals",
    "load",
    "load_model",
    "load_samples",
    "load_tune",
    "parse_params",
    "read_mapping",
    "read_model",
    "read_yaml",
    "sample_by_name",
    "samples_with_role",
    "scan_parameters",
    "schema_validator",
    "stage_config",
    "validate",
    "workflow_config",
]
