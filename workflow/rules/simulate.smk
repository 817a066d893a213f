rule simulate:
    output:
        paths.TOY,
    params:
        config=CONFIG,
        digest=lambda w: digest("simulate", sample=w.toy),
    log:
        paths.fill(paths.LOG, name="simulate/{toy}"),
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
