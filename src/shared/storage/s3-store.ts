/**
 * S3 (and any S3-compatible store: MinIO, s3rver, ...) as an object store. Region, credentials and
 * endpoint come from the AWS SDK's standard configuration (AWS_REGION, the credentials chain,
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL); whenever a custom endpoint is set, path-style addressing is
 * used so MinIO-like stores work from environment variables alone. Large writes use multipart
 * uploads (@aws-sdk/lib-storage); an S3 PUT is atomic, so readers never see half an object.
 *
 * Errors: throttling, 5xx and connection resets are retried with jittered exponential backoff;
 * a missing bucket, denied access or bad credentials fail at once with the URI in the message.
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { OodError } from '../errors.js';
import { MAX_OBJECT_BYTES, tooLarge, type GetOptions, type ListEntry, type ObjectInfo, type ObjectStore } from './object-store.js';
import { withRetry, type RetryOptions } from './retry.js';
import { concatBytes } from '../typed-arrays.js';

export interface S3Settings {
  /** Custom endpoint (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL), if any. */
  readonly endpoint?: string;
  /** Region (AWS_REGION); the SDK's own resolution applies when unset. */
  readonly region?: string;
  /** Force path-style addressing (default: whenever an endpoint is set). */
  readonly forcePathStyle?: boolean;
  /** Objects larger than this are uploaded in parts. Default 16 MiB. */
  readonly multipartThreshold?: number;
  readonly retry?: Partial<RetryOptions>;
}

const PERMANENT = new Set(['NoSuchBucket', 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AllAccessDisabled', 'InvalidBucketName', 'PermanentRedirect', 'AuthorizationHeaderMalformed']);
const TRANSIENT_NAMES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeoutException', 'InternalError', 'ServiceUnavailable', 'TooManyRequestsException', 'TimeoutError']);
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET']);
/** Nothing answers: still retried (a restarting endpoint), but the message names the endpoint. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Maps an SDK error to our taxonomy, naming the object URI (and, when the endpoint cannot be reached
 * at all, the endpoint). Never includes credentials.
 */
export function classifyS3Error(err: unknown, uri: string, endpoint = 'the AWS S3 endpoint'): OodError {
  if (err instanceof OodError) return err;
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number }; cause?: { code?: string } };
  const name = e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  const code = e.code ?? e.cause?.code ?? '';
  const msg = (e.message ?? String(err)).replace(/\s+/g, ' ').slice(0, 300);
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket')) return new OodError('NOT_FOUND', `${uri}: no such object`, { cause: err });
  if (PERMANENT.has(name) || status === 403 || status === 400 || status === 301) return new OodError('STORAGE_PERMANENT', `${uri}: ${name || `HTTP ${status}`}: ${msg}`, { cause: err });
  if (UNREACHABLE_CODES.has(code) || /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH/.test(msg)) {
    return new OodError('STORAGE_TRANSIENT', `cannot reach ${endpoint} (${code || msg}) for ${uri}`, { cause: err });
  }
  if (TRANSIENT_NAMES.has(name) || TRANSIENT_CODES.has(code) || (status !== undefined && (status >= 500 || status === 429)) || /socket hang up|ECONNRESET|ECONNREFUSED|timed? ?out/i.test(msg)) {
    return new OodError('STORAGE_TRANSIENT', `${uri}: ${name || code || `HTTP ${status}`}: ${msg}`, { cause: err });
  }
  return new OodError('STORAGE_PERMANENT', `${uri}: ${name || 'error'}: ${msg}`, { cause: err });
}

export class S3Store implements ObjectStore {
  readonly uri: string;
  readonly bucket: string;
  private readonly client: S3Client;
  private readonly settings: S3Settings;

  constructor(bucket: string, settings: S3Settings = {}, client?: S3Client) {
    this.bucket = bucket;
    this.uri = `s3://${bucket}`;
    this.settings = settings;
    const config: S3ClientConfig = {
      // Our own retry loop decides (and logs) retries; the SDK's would hide them and double the waits.
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(settings.region !== undefined ? { region: settings.region } : {}),
      ...(settings.endpoint !== undefined ? { endpoint: settings.endpoint } : {}),
      forcePathStyle: settings.forcePathStyle ?? settings.endpoint !== undefined,
    };
    if (config.region === undefined && settings.endpoint !== undefined) config.region = 'us-east-1';
    this.client = client ?? new S3Client(config);
  }

  private key(key: string): string {
    if (key.includes('\0')) throw new OodError('KEY_UNSAFE', `unsafe object key ${JSON.stringify(key)}: contains NUL`);
    return key.replace(/^\/+/, '');
  }

  private objectUri(key: string): string {
    return `${this.uri}/${key}`;
  }

  private run<T>(key: string, what: string, fn: () => Promise<T>): Promise<T> {
    return withRetry(async () => {
      try {
        return await fn();
      } catch (err) {
        throw classifyS3Error(err, this.objectUri(key), this.settings.endpoint !== undefined ? `the S3 endpoint ${this.settings.endpoint}` : undefined);
      }
    }, { ...this.settings.retry, label: `${what} ${this.objectUri(key)}` });
  }

  /**
   * Every object under `prefix`, page by page. Each page is its own request (ContinuationToken), so a
   * throttled or failed page is retried like any request; when a page cannot be fetched within the
   * retry budget the listing fails with the URI and the reason: a partial listing is never reported
   * as the whole prefix.
   */
  async *list(prefix: string): AsyncIterable<ListEntry> {
    const p = this.key(prefix);
    let token: string | undefined;
    do {
      const page = await this.run(p, 'list', () => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: p, MaxKeys: 1000, ...(token !== undefined ? { ContinuationToken: token } : {}) })));
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || o.Key.endsWith('/')) continue;
        yield { key: o.Key, size: o.Size ?? 0, etag: o.ETag ?? '' };
      }
      if (page.IsTruncated === true && page.NextContinuationToken === undefined) throw new OodError('STORAGE_PERMANENT', `${this.objectUri(p)}: the listing is truncated but gives no continuation token`);
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async get(key: string, options: GetOptions = {}): Promise<Uint8Array> {
    const k = this.key(key);
    const maxBytes = options.maxBytes ?? MAX_OBJECT_BYTES;
    return this.run(k, 'get', async () => {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: k }));
      if (res.Body === undefined) throw new OodError('STORAGE_TRANSIENT', `${this.objectUri(k)}: empty response body`);
      if (res.ContentLength !== undefined && res.ContentLength > maxBytes) {
        // Stop the download: the body is never read.
        (res.Body as { destroy?: () => void }).destroy?.();
        throw tooLarge(this.objectUri(k), res.ContentLength, maxBytes, options.limit);
      }
      if (res.ContentLength !== undefined) return res.Body.transformToByteArray();
      // No length announced: read the stream, and stop at the cap (at most the cap in chunks, then one copy).
      const chunks: Uint8Array[] = [];
      let total = 0;
      for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
        total += chunk.byteLength;
        if (total > maxBytes) {
          (res.Body as { destroy?: () => void }).destroy?.();
          throw tooLarge(this.objectUri(k), 'unannounced', maxBytes, options.limit);
        }
        chunks.push(chunk);
      }
      return concatBytes(chunks);
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const k = this.key(key);
    try {
      return await this.run(k, 'head', async () => {
        const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: k }));
        return { key: k, size: res.ContentLength ?? 0, etag: res.ETag ?? '' };
      });
    } catch (err) {
      if (err instanceof OodError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  async put(key: string, data: Uint8Array | string): Promise<void> {
    const k = this.key(key);
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    const threshold = this.settings.multipartThreshold ?? 16 * 1024 * 1024;
    await this.run(k, 'put', async () => {
      if (body.byteLength > threshold) {
        await new Upload({ client: this.client, params: { Bucket: this.bucket, Key: k, Body: body }, partSize: Math.max(5 * 1024 * 1024, Math.ceil(body.byteLength / 9000)), queueSize: 4 }).done();
      } else {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: k, Body: body }));
      }
    });
  }

  /** Server-side copy within the bucket (objects up to 5 GB: part files are far smaller). */
  async copy(from: string, to: string): Promise<void> {
    const src = this.key(from);
    const dst = this.key(to);
    await this.run(dst, 'copy', () => this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: dst, CopySource: `${this.bucket}/${src.split('/').map(encodeURIComponent).join('/')}` })));
  }

  /** Lists the prefix and deletes its objects 1,000 per request. */
  async deletePrefix(prefix: string): Promise<void> {
    if (!prefix.endsWith('/') || prefix.replace(/\/+$/, '') === '') throw new OodError('KEY_UNSAFE', `${this.uri}: refusing to delete ${JSON.stringify(prefix)} (not a sub-folder)`);
    const p = this.key(prefix);
    for (;;) {
      // Always the first page: what was deleted is gone from the listing.
      const page = await this.run(p, 'list', () => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: p, MaxKeys: 1000 })));
      const keys = (page.Contents ?? []).flatMap((o) => (o.Key !== undefined ? [{ Key: o.Key }] : []));
      if (keys.length === 0) return;
      const res = await this.run(p, 'delete', () => this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } })));
      const failed = res.Errors?.[0];
      if (failed !== undefined) throw new OodError('STORAGE_PERMANENT', `${this.objectUri(failed.Key ?? p)}: cannot delete (${failed.Code ?? 'error'}: ${failed.Message ?? ''})`);
    }
  }

  async delete(key: string): Promise<void> {
    const k = this.key(key);
    await this.run(k, 'delete', () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: k })));
  }

  destroy(): void {
    this.client.destroy();
  }
}
