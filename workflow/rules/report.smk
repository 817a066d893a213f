# studies whose best trial is a listed model (tune.<study>): the report shows how it was found
TUNED_STUDIES = [m.removeprefix("tune.") for m in MODELS if m.removeprefix("tune.") in TUNE]


rule report:
    input:
        metrics=expand("results/metrics/{model}.json", model=MODELS),
        training=expand("results/models/{model}/metrics.json", model=MODELS),
        split_summary="results/prepared/split_summary.json",
        convert_summaries=expand("results/h5/{sample}.summary.json", sample=SAMPLES),
        exports=expand("results/export/{model}/benchmark.json", model=EXPORTED),
        epochs="results/compare/epochs.json",
        studies=expand("results/tune/{study}/study.json", study=TUNED_STUDIES),
    output:
        md="results/report.md",
        # report.md with its images inlined: the report inside `snakemake --report`
        page=report("results/report.md.html", category="Report", caption="../report/report.rst"),
        compare=report(
            "results/plots/compare/roc.png",
            category="Comparison",
            caption="../report/compare.rst",
        ),
        compare_pdf="results/plots/compare/roc.pdf",
    params:
        # holds config_hash, the whole config's: the report shows it
        config=stage_config(config, "report"),
        models=MODELS,
        repo=workflow.basedir,
    log:
        "results/logs/report/report.log",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "hepsnake report --config {params.config:q} --models {params.models:q}"
        " --metrics {input.metrics:q} --training {input.training:q}"
        " --split-summary {input.split_summary:q}"
        " --convert-summaries {input.convert_summaries:q}"
        " --exports {input.exports:q} --epochs {input.epochs:q} --studies {input.studies:q}"
        " --repo {params.repo:q} --output {output.md:q} > {log:q} 2>&1"


rule compare:
    input:
        expand("results/models/{model}/metrics.json", model=MODELS),
    output:
        table="results/compare/epochs.json",
        plot=report(
            "results/plots/compare/epochs.png",
            category="Comparison",
            caption="../report/epochs.rst",
        ),
        plot_pdf="results/plots/compare/epochs.pdf",
    params:
        models=MODELS,
    log:
        "results/logs/report/compare.log",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "hepsnake compare --names {params.models:q} --metrics {input:q}"
        " --output {output.table:q} --plot {output.plot:q} > {log:q} 2>&1"


rule track:
    input:
        training=expand("results/models/{model}/metrics.json", model=MODELS),
        plots=expand(rules.evaluate.output.roc, model=MODELS),
        onnx=expand(rules.export.output.onnx, model=EXPORTED),
    output:
        "results/tracking/runs.json",
    params:
        config=stage_config(config, "track"),
        models=expand("results/models/{model}", model=MODELS),
        # every plot of rule evaluate, and of rule export
        artifacts=lambda w, input: [
            *input.onnx,
            *expand("results/plots/{model}/{name}.png", model=MODELS, name=EVALUATE_PLOTS),
            *expand(rules.export.output.plot, model=EXPORTED),
        ],
    log:
        "results/logs/report/track.log",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/train.yaml"
    shell:
        "hepsnake track --config {params.config:q} --models {params.models:q}"
        " --artifacts {params.artifacts:q} --output {output:q} > {log:q} 2>&1"
