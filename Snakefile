# hepsnake: ROOT/xAOD → HDF5 → prepared splits → trained, evaluated, exported classifiers.
from snakemake.utils import min_version

min_version("9.27")


# A --configfile is the whole config (an overlay says `extends: config/config.yaml`):
# the toy default is read only when no config file is given.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/convert.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand(paths.CONVERTED, sample=SAMPLES),
        rules.prepare_norm.output,
        rules.prepare_control.output if CONTROL_SAMPLES else [],
        paths.REPORT if MODELS else [],
        paths.RUNS if MODELS and config["tracking"]["mlflow"] else [],
    default_target: True
