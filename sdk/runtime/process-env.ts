/**
 * Environment tunelab's own processes start with (the `tunelab` bin's shebang and the Jupyter kernel's kernelspec).
 * glibc's malloc raises its mmap threshold as large blocks are freed (up to 32 MiB) and then keeps freed activation
 * buffers in its heap instead of returning them; a fixed 1 MiB threshold hands them back, which lowers the peak of a
 * real-size step by gigabytes (docs/performance.md).
 */
export const PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: "1048576" };
