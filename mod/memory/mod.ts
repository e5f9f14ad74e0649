/** Native memory housekeeping: gives glibc's freed heap back to the kernel periodically. */
export { MemoryTrimmer, type TrimmerDeps, type TrimmerOptions } from "./trimmer.ts";
