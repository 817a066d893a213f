rule report:
    input:
        metrics=expand("results/metrics/{model}.json", model=MODELS),
        predictions=expand("results/predictions/{model}.h5", model=MODELS),
        split_summary="results/prepared/split_summary.json",
        convert_summaries=expand("results/h5/{sample}.summary.json", sample=SAMPLES),
        exports=expand("results/export/{model}/benchmark.json", model=EXPORTED),
    output:
        md="results/report.md",
        compare=report(
            "results/plots/compare/roc.png",
            category="Comparison",
            caption="../report/compare.rst",
        ),
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
        " --predictions {input.predictions:q} --metrics {input.metrics:q}"
        " --split-summary {input.split_summary:q}"
        " --convert-summaries {input.convert_summaries:q}"
        " --exports {input.exports:q} --repo {params.repo:q} --output {output.md:q} > {log:q} 2>&1"
