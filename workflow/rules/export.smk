# model.athena.onnx (the Salt/Athena layout) is made where export.athena says so (default on)
rule export:
    input:
        ckpt=paths.CHECKPOINT,
        test=paths.fill(paths.SPLIT, split="test"),
        val=paths.fill(paths.SPLIT, split="val"),
    output:
        **{k: v for k, v in paths.EXPORT_OUTPUTS.items() if k not in ("plot", "athena")},
        plot=report(
            paths.EXPORT_PLOT,
            category="{model}",
            caption="../report/benchmark.rst",
        ),
        **paths.figure_twins(plot=paths.EXPORT_PLOT),
        **(
            {"athena": paths.EXPORT_OUTPUTS["athena"]}
            if RESOLVED.config["export"]["athena"]
            else {}
        ),
    params:
        config=CONFIG,
        digest=lambda w: digest("export", model=w.model),
        repo=workflow.basedir,
    log:
        paths.fill(paths.LOG, name="export/{model}"),
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/export.yaml"
    shell:
        "hepsnake export --config {params.config:q} --model {wildcards.model:q}"
        " --threads {threads} --repo {params.repo:q} > {log:q} 2>&1"
