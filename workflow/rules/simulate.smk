rule simulate:
    output:
        "results/toy/{toy}.root",
    params:
        config=lambda w: stage_config(config, "simulate", toy=w.toy),
    log:
        "results/logs/simulate/{toy}.log",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/convert.yaml"
    wildcard_constraints:
        toy="|".join(TOYS) or "NONE",
    shell:
        "hepsnake simulate --config {params.config:q} --sample {wildcards.toy:q}"
        " --output {output:q} > {log:q} 2>&1"
