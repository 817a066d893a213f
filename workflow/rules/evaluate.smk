rule predict:
    input:
        ckpt=paths.CHECKPOINT,
        test=paths.fill(paths.SPLIT, split="test"),
        control=paths.fill(paths.CONTROL_SPLIT, split="test") if CONTROL_SAMPLES else [],
    output:
        paths.PREDICTIONS,
    params:
        config=CONFIG,
        digest=lambda w: digest("predict", model=w.model),
    log:
        paths.fill(paths.LOG, name="predict/{model}"),
    threads: 2
    resources:
        mem_mb=4000,
    conda:
        "../../envs/train.yaml"
    shell:
        "hepsnake predict --config {params.config:q} --model {wildcards.model:q} > {log:q} 2>&1"


# the plots rule evaluate writes (paths.evaluate_plots), each paths.PLOT and its PDF, and the
# folder of the model's task plots (its PNGs in snakemake --report too)
rule evaluate:
    input:
        predictions=paths.PREDICTIONS,
        training=paths.TRAINING_METRICS,
    output:
        metrics=paths.METRICS,
        tasks=report(
            directory(paths.TASK_PLOT_DIR),
            patterns=["{task_plot}.png"],
            category="{model}",
            caption="../report/task.rst",
        ),
        **{
            name: report(
                paths.fill(paths.PLOT, model="{model}", name=name),
                category="{model}",
                caption=f"../report/{paths.evaluate_caption(name)}.rst",
            )
            for name in EVALUATE_PLOTS
        },
        # every plot also as PDF, for notes
        **paths.figure_twins(
            **{name: paths.fill(paths.PLOT, model="{model}", name=name) for name in EVALUATE_PLOTS}
        ),
    params:
        config=CONFIG,
        digest=lambda w: digest("evaluate", model=w.model),
    log:
        paths.fill(paths.LOG, name="evaluate/{model}"),
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "hepsnake evaluate --config {params.config:q} --model {wildcards.model:q}"
        " --output {output.metrics:q} > {log:q} 2>&1"
