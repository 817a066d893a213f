# whether model.athena.onnx (the Salt/Athena layout) is made: export.athena (default on)
ATHENA = config["export"]["athena"]


rule export:
    input:
        ckpt="results/models/{model}/best.ckpt",
        test="results/prepared/test.h5",
        val="results/prepared/val.h5",
    output:
        onnx="results/export/{model}/model.onnx",
        int8="results/export/{model}/model.int8.onnx",
        validation="results/export/{model}/validation.json",
        benchmark="results/export/{model}/benchmark.json",
        plot=report(
            "results/export/{model}/benchmark.png",
            category="{model}",
            caption="../report/benchmark.rst",
        ),
        **({"athena": "results/export/{model}/model.athena.onnx"} if ATHENA else {}),
    params:
        outdir=subpath(output.onnx, parent=True),
        repo=workflow.basedir,
        config=stage_config(config, "export"),
    log:
        "results/logs/export/{model}.log",
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/export.yaml"
    shell:
        "hepsnake export --model {wildcards.model:q} --checkpoint {input.ckpt:q}"
        " --test {input.test:q} --val {input.val:q} --outdir {params.outdir:q}"
        " --config {params.config:q} --threads {threads} --repo {params.repo:q} > {log:q} 2>&1"
