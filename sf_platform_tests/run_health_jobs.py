"""A code location of one tiny job for test_run_health: it naps until killed, in the run worker's own
process (the platform's default executor), so the worker's pid is the process that does the work.
"""

import os
import time

import dagster as dg


@dg.op
def nap(context):
    context.log.info(f"napping in pid {os.getpid()}")
    time.sleep(600)


@dg.job(executor_def=dg.in_process_executor)
def sleepy():
    nap()


defs = dg.Definitions(jobs=[sleepy])
