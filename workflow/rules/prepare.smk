# The split jobs read every converted sample: their paths come from the contract (the
# standard layout), so the command stays short; the inputs are declared for the DAG.
rule prepare_splits:
    input:
        expand(paths.CONVERTED, sample=MAIN_SAMPLES),
    output:
        train=paths.fill(paths.SPLIT, split="train"),
        val=paths.fill(paths.SPLIT, split="val"),
        test=paths.fill(paths.SPLIT, split="test"),
        debug=expand(paths.DEBUG_SPLIT, split=SPLITS),
        summary=paths.SPLIT_SUMMARY,
        plot=report(
            paths.REWEIGHTING_PLOT,
            category="Dataset",
            caption="../report/reweighting.rst",
        ),
    params:
        config=CONFIG,
        digest=digest("split"),
    log:
        paths.fill(paths.LOG, name="prepare/splits"),
    threads: 1
    resources:
        mem_mb=8000,
    conda:
        "../../envs/prepare.yaml"
    shell:
        "hepsnake split --config {params.config:q} > {log:q} 2>&1"


rule prepare_control:
    input:
        expand(paths.CONVERTED, sample=CONTROL_SAMPLES),
    output:
        train=paths.fill(paths.CONTROL_SPLIT, split="train"),
        val=paths.fill(paths.CONTROL_SPLIT, split="val"),
        test=paths.fill(paths.CONTROL_SPLIT, split="test"),
        summary=paths.CONTROL_SUMMARY,
    params:
        config=CONFIG,
        digest=digest("split"),
    log:
        paths.fill(paths.LOG, name="prepare/control"),
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/prepare.yaml"
    shell:
        "hepsnake split --control --config {params.config:q} > {log:q} 2>&1"


rule prepare_norm:
    input:
        train=paths.fill(paths.SPLIT, split="train"),
    output:
        norm=paths.NORM,
        class_dict=paths.CLASS_DICT,
        classes=paths.CLASSES,
    params:
        config=CONFIG,
        digest=digest("norm"),
    log:
        paths.fill(paths.LOG, name="prepare/norm"),
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/prepare.yaml"
    shell:
        "hepsnake norm --config {params.config:q} --train {input.train:q}"
        " --norm {output.norm:q} --class-dict {output.class_dict:q}"
        " --classes {output.classes:q} > {log:q} 2>&1"
