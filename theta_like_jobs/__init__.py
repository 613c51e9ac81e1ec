"""Batch job scripts for taskgen ensembles on Cobalt, PBS and SLURM machines.

``python -m theta_like_jobs --platform polaris --spec ensembles/gen_sweep.yaml --nodes 2 ...``
writes a script that starts 1 manager + the right number of workers under the platform's MPI
launcher, tells the ensemble what a node has, and leaves a margin before the walltime to save.
Machine facts are data (platforms.yaml); the arithmetic is in plan.py; the text in templates/.
"""
