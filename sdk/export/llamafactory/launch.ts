/**
 * How an exported job starts: LLaMA-Factory's own launcher (`llamafactory-cli train`, which runs torchrun when
 * FORCE_TORCHRUN=1 and reads NNODES, NODE_RANK, NPROC_PER_NODE, MASTER_ADDR, MASTER_PORT) from a shell on one node,
 * on each of several nodes, under Slurm, or as a Kubeflow PyTorchJob.
 */
import YAML from "yaml";

/** What every launcher needs to know. */
export interface LaunchPlan {
  /** The LF YAML, relative to the export folder. */
  yaml: string;
  nodes: number;
  gpusPerNode: number;
  /** The DeepSpeed config file, relative to the export folder, if any. */
  deepspeed?: string;
  /** The job's name (Slurm job, Kubernetes object). */
  name: string;
  /** Container image with LLaMA-Factory installed (PyTorchJob). */
  image: string;
}

/** The training command; DeepSpeed comes as an OmegaConf override, so the YAML stays one tunelab reads back. */
function trainCommand(p: LaunchPlan): string {
  return `llamafactory-cli train ${p.yaml}${p.deepspeed ? ` deepspeed=${p.deepspeed}` : ""}`;
}

/** train.sh: one node, all its GPUs. */
export function singleNodeScript(p: LaunchPlan): string {
  return `#!/usr/bin/env bash
# One node, ${p.gpusPerNode} GPU(s): LLaMA-Factory's launcher starts torchrun with one process per GPU.
set -euo pipefail
cd "$(dirname "$0")"
FORCE_TORCHRUN=1 NPROC_PER_NODE="\${NPROC_PER_NODE:-${p.gpusPerNode}}" ${trainCommand(p)}
`;
}

/** train-multinode.sh: run on every node, with NODE_RANK and MASTER_ADDR set. */
export function multiNodeScript(p: LaunchPlan): string {
  return `#!/usr/bin/env bash
# ${p.nodes} nodes x ${p.gpusPerNode} GPU(s). Run this on every node, in this folder (on storage all nodes share):
#   node 0:  NODE_RANK=0 MASTER_ADDR=<address of node 0> ./train-multinode.sh
#   node k:  NODE_RANK=k MASTER_ADDR=<address of node 0> ./train-multinode.sh
set -euo pipefail
cd "$(dirname "$0")"
: "\${NODE_RANK:?set NODE_RANK: 0 on the master node, 1..${p.nodes - 1} on the others}"
: "\${MASTER_ADDR:?set MASTER_ADDR to the address of the master node (reachable from every node)}"
FORCE_TORCHRUN=1 \\
  NNODES="\${NNODES:-${p.nodes}}" NODE_RANK="$NODE_RANK" NPROC_PER_NODE="\${NPROC_PER_NODE:-${p.gpusPerNode}}" \\
  MASTER_ADDR="$MASTER_ADDR" MASTER_PORT="\${MASTER_PORT:-29500}" \\
  ${trainCommand(p)}
`;
}

/** slurm.sbatch: one task per node; Slurm's node list gives the master address and each node's rank. */
export function slurmScript(p: LaunchPlan): string {
  return `#!/usr/bin/env bash
#SBATCH --job-name=${p.name}
#SBATCH --nodes=${p.nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=${p.gpusPerNode}
#SBATCH --output=slurm-%j.out
# Submit from this folder (on storage all nodes share): sbatch slurm.sbatch
set -euo pipefail
cd "\${SLURM_SUBMIT_DIR:-$(pwd)}"
MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export MASTER_ADDR MASTER_PORT="\${MASTER_PORT:-29500}"
srun --ntasks-per-node=1 bash -c 'FORCE_TORCHRUN=1 NNODES="$SLURM_NNODES" NODE_RANK="$SLURM_NODEID" NPROC_PER_NODE=${p.gpusPerNode} \\
  MASTER_ADDR="$MASTER_ADDR" MASTER_PORT="$MASTER_PORT" ${trainCommand(p)}'
`;
}

/** The claim the PyTorchJob mounts: the export folder (and the model) copied onto it. */
export function claimName(p: LaunchPlan): string {
  return `${p.name}-files`;
}

/** Where the export folder is mounted in each pod. */
export const POD_WORKDIR = "/workspace/job";

/**
 * A Kubeflow PyTorchJob (kubeflow.org/v1): one Master and nodes-1 Workers, each one pod with gpusPerNode GPUs
 * (nvidia.com/gpu). The training operator gives every pod MASTER_ADDR and MASTER_PORT, and the pod count and the pod's
 * index as PET_NNODES / PET_NODE_RANK (v1.7 on) and WORLD_SIZE / RANK (spec.nprocPerNode is left unset, so WORLD_SIZE
 * counts pods, not processes).
 */
export function pyTorchJob(p: LaunchPlan): Record<string, unknown> {
  const replica = (replicas: number) => ({
    replicas,
    restartPolicy: "OnFailure",
    template: {
      metadata: { labels: { app: p.name } },
      spec: {
        containers: [
          {
            name: "pytorch", // the container the training operator configures
            image: p.image,
            workingDir: POD_WORKDIR,
            command: ["bash", "-c"],
            // PET_NNODES / PET_NODE_RANK (operator v1.7+), else WORLD_SIZE / RANK: one pod a node, as spec.nprocPerNode is unset.
            args: [
              `FORCE_TORCHRUN=1 NNODES="\${PET_NNODES:-$WORLD_SIZE}" NODE_RANK="\${PET_NODE_RANK:-$RANK}" NPROC_PER_NODE=${p.gpusPerNode} ${trainCommand(p)}`,
            ],
            resources: { limits: { "nvidia.com/gpu": p.gpusPerNode } },
            volumeMounts: [
              { name: "job", mountPath: POD_WORKDIR },
              { name: "shm", mountPath: "/dev/shm" },
            ],
          },
        ],
        volumes: [
          { name: "job", persistentVolumeClaim: { claimName: claimName(p) } },
          { name: "shm", emptyDir: { medium: "Memory" } },
        ],
      },
    },
  });
  return {
    apiVersion: "kubeflow.org/v1",
    kind: "PyTorchJob",
    metadata: { name: p.name },
    spec: {
      runPolicy: { cleanPodPolicy: "None", backoffLimit: 3 },
      pytorchReplicaSpecs: { Master: replica(1), ...(p.nodes > 1 ? { Worker: replica(p.nodes - 1) } : {}) },
    },
  };
}

/** The PyTorchJob as a manifest file. */
export function pyTorchJobYaml(p: LaunchPlan): string {
  return `# kubectl apply -f pytorchjob.yaml   (needs the Kubeflow training operator and a PVC "${claimName(p)}" holding this folder)\n${YAML.stringify(pyTorchJob(p))}`;
}
