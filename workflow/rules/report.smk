# report, compare and track read a file per model or sample: their paths come from the
# contract (the standard layout), so the command stays short; the inputs are declared for
# the DAG.
rule report:
    input:
        metrics=expand(paths.METRICS, model=MODELS),
        training=expand(paths.TRAINING_METRICS, model=MODELS),
        split_summary=paths.SPLIT_SUMMARY,
        convert_summaries=expand(paths.CONVERT_SUMMARY, sample=SAMPLES),
        exports=expand(paths.EXPORT_BENCHMARK, model=EXPORTED),
        epochs=paths.EPOCHS,
        studies=expand(paths.STUDY_SUMMARY, study=TUNED_STUDIES),
    output:
        md=paths.REPORT,
        compare=report(
            paths.COMPARE_ROC,
            category="Comparison",
            caption="../report/compare.rst",
        ),
    params:
        config=CONFIG,
        # the report's contract holds the whole config's hash: the report shows it
        digest=digest("report"),
        repo=workflow.basedir,
    log:
        paths.fill(paths.LOG, name="report/report"),
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "hepsnake report --config {params.config:q} --repo {params.repo:q} > {log:q} 2>&1"


rule compare:
    input:
        expand(paths.TRAINING_METRICS, model=MODELS),
    output:
        table=paths.EPOCHS,
        plot=report(
            paths.EPOCHS_PLOT,
            category="Comparison",
            caption="../report/epochs.rst",
        ),
    params:
        config=CONFIG,
        digest=digest("compare"),
    log:
        paths.fill(paths.LOG, name="report/compare"),
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "hepsnake compare --config {params.config:q} > {log:q} 2>&1"


rule track:
    input:
        training=expand(paths.TRAINING_METRICS, model=MODELS),
        plots=expand(paths.PLOT, model=MODELS, name=EVALUATE_PLOTS),
        onnx=expand(paths.ONNX, model=EXPORTED),
        export_plots=expand(paths.EXPORT_PLOT, model=EXPORTED),
    output:
        paths.RUNS,
    params:
        config=CONFIG,
        digest=digest("track"),
    log:
        paths.fill(paths.LOG, name="report/track"),
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/train.yaml"
    shell:
        "hepsnake track --config {params.config:q} > {log:q} 2>&1"
