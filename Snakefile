"""KAN paper reproduction: datasets -> trained KAN/MLP pairs and the science experiments
(sections 3.4-4.4) -> tables, figures, MLflow.

`snakemake --cores N` runs the embedded default profile; see README.md for the others.
"""

from snakemake.utils import min_version

from kan.pipeline.scheduler import cancel_pending_timers

min_version("9.0")


configfile: f"{workflow.basedir}/workflow/config/default.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/science.smk"


rule all:
    default_target: True
    input:
        final_targets(),


rule shard:
    localrule: True
    input:
        shard_targets(),


onsuccess:
    cancel_pending_timers()  # the rate limiter's timers would hold the finished run open (docs/performance.md)


onerror:
    cancel_pending_timers()
