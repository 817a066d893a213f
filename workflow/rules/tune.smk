# Hyperparameter studies (config `tune:`): trial jobs sharing one Optuna study, then the best
# trial as a model config (`models: [tune.<study>]` trains it like any other model).
# Every trial job also writes to the study's storage, paths.JOURNAL (shared, not an output).
rule tune_trial:
    input:
        unpack(tune_trial_inputs),
    output:
        record=paths.TRIAL,
        outdir=directory(paths.TRIAL_DIR),
    params:
        config=CONFIG,
        digest=lambda w: digest("tune", study=w.study),
    log:
        paths.fill(paths.LOG, name="tune/{study}/{trial}"),
    # as rule train's (the batch profiles give both the same GPU request)
    threads: 2
    resources:
        mem_mb=8000,
        gpu=1,
    conda:
        "../../envs/train.yaml"
    wildcard_constraints:
        study="|".join(TUNE) or "NONE",
        trial=r"\d+",
    shell:
        "hepsnake tune --config {params.config:q} --study {wildcards.study:q}"
        " --job {wildcards.trial:q} --threads {threads} > {log:q} 2>&1"


rule tune_best:
    input:
        lambda w: expand(paths.TRIAL, study=w.study, trial=range(TUNE[w.study]["n_trials"])),
    output:
        best=paths.BEST_MODEL,
        summary=paths.STUDY_SUMMARY,
        history=paths.STUDY_HISTORY,
        importances=paths.STUDY_IMPORTANCES,
    params:
        config=CONFIG,
        digest=lambda w: digest("study", study=w.study),
    log:
        paths.fill(paths.LOG, name="tune/{study}/best"),
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/train.yaml"
    wildcard_constraints:
        study="|".join(TUNE) or "NONE",
    shell:
        "hepsnake study --config {params.config:q} --study {wildcards.study:q} > {log:q} 2>&1"
