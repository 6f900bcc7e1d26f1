/**
 * Default settings that more than one entry point uses, in one place: the CLI flags, the queue
 * contract's payload defaults and the scheduler all take them from here.
 */
export const DEFAULTS = Object.freeze({
  /** Redis when REDIS_URL is not set. */
  redisUrl: 'redis://127.0.0.1:6379',
  /** Redis key prefix of the queues (BullMQ's `prefix`). */
  queuePrefix: 'ood',
  /** Images per shard (one extract and one score job each). */
  shardSize: 1000,
  /** Images in each of the report's most-OOD and most-typical galleries. */
  topK: 24,
  /** report.md's partitions (--md-style): a table, or a plain list for chat tools without tables. */
  mdStyle: 'table' as 'table' | 'list',
  /** Report partitions: the first N path segments below the scanned prefix. */
  partitionDepth: 1,
  /** Largest image file read, in bytes (--max-bytes): larger files are per-image failures, never read. */
  maxBytes: 256 * 1024 * 1024,
  /**
   * Runs with at most this many scored images (failures, skipped entries) also get the single files
   * scores.parquet and scores.csv (failures.csv, skipped.csv), merged in memory from the part files
   * every run has; larger runs are read as the scores/ (failures/, skipped/) datasets.
   */
  singleFileMax: 100_000,
});
