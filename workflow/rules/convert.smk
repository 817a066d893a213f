# A sample is converted in parts of convert.files_per_job files (rule convert, one job per
# part), then gathered (rule gather: a virtual dataset over the parts, no rows copied). A part
# whose input fails is written as failed; the gather judges convert.max_failed_fraction and
# marks failed parts for a retry (an input newer than their outputs), so the next run converts
# exactly those again. A sample with remote globs is listed once (checkpoint list_files, again
# when its patterns change): later DAGs read the list.
localrules:
    gather,


checkpoint list_files:
    output:
        paths.FILE_LIST,
    params:
        config=CONFIG,
        patterns=lambda w: PARTS.patterns(w.sample),
    log:
        paths.FILE_LIST_LOG,
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../../envs/convert.yaml"
    wildcard_constraints:
        sample="[^/]+",
    shell:
        "hepsnake list-files --config {params.config:q} --sample {wildcards.sample:q}"
        " --output {output:q} > {log:q} 2>&1"


rule convert:
    input:
        lambda w: PARTS.part_inputs(w.sample, int(w.part)),
    output:
        paths.PART,
    params:
        config=CONFIG,
        digest=lambda w: convert_part_digest(w.sample),
    log:
        paths.PART_LOG,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/convert.yaml"
    wildcard_constraints:
        # any name: the contract rejects an unknown sample (a joined name list slows big DAGs)
        sample="[^/]+",
        part=paths.PART_WILDCARD,
    shell:
        "hepsnake convert --config {params.config:q} --sample {wildcards.sample:q}"
        " --part {wildcards.part:q} --output {output:q} --no-progress > {log:q} 2>&1"


rule gather:
    input:
        lambda w: PARTS.gather_inputs(w.sample),
    output:
        h5=paths.CONVERTED,
        summary=paths.CONVERT_SUMMARY,
    params:
        config=CONFIG,
        digest=lambda w: digest("convert", sample=w.sample),
    log:
        paths.GATHER_LOG,
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../../envs/convert.yaml"
    wildcard_constraints:
        sample="[^/]+",
    shell:
        "hepsnake gather --config {params.config:q} --sample {wildcards.sample:q}"
        " --output {output.h5:q} --summary {output.summary:q} > {log:q} 2>&1"
