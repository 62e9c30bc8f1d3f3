/**
 * A version file: one line of JSON naming the version, its parent, the segment's size and
 * CRC-32, then the segment's bytes. The header makes a torn or damaged file detectable and
 * lets `head -1` show what a file holds.
 */
import { crc32 } from 'node:zlib';
import { TcsyncError } from '../../errors.js';
import { isCanonicalUuid, type VersionId } from '../../ids.js';
import type { Version } from '../storage.js';

/** A header is short; anything longer without a newline is not a version file. */
export const MAX_HEADER = 512;
const NEWLINE = 0x0a;

export interface VersionHeader {
  versionId: VersionId;
  parentVersionId: VersionId;
  size: number;
  crc32: number;
}

export function encodeVersion(version: Version): Buffer[] {
  const header: VersionHeader = {
    versionId: version.versionId,
    parentVersionId: version.parentVersionId,
    size: version.historySegment.byteLength,
    crc32: crc32(version.historySegment),
  };
  return [Buffer.from(JSON.stringify(header) + '\n'), Buffer.from(version.historySegment.buffer, version.historySegment.byteOffset, version.historySegment.byteLength)];
}

function corrupt(file: string, what: string): TcsyncError {
  return new TcsyncError('CORRUPT', `${file}: ${what}`);
}

/** Parses the header line at the start of `bytes` (which may be just the file's first bytes). */
export function parseHeader(bytes: Buffer, file: string): { header: VersionHeader; bodyStart: number } {
  const end = bytes.subarray(0, MAX_HEADER).indexOf(NEWLINE);
  if (end < 0) throw corrupt(file, 'no header line');
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.subarray(0, end).toString('utf8'));
  } catch {
    throw corrupt(file, 'header is not JSON');
  }
  const h = raw as Partial<VersionHeader> | null;
  if (
    typeof h !== 'object' || h === null ||
    typeof h.versionId !== 'string' || !isCanonicalUuid(h.versionId) ||
    typeof h.parentVersionId !== 'string' || !isCanonicalUuid(h.parentVersionId) ||
    !Number.isSafeInteger(h.size) || (h.size as number) < 0 ||
    !Number.isInteger(h.crc32) || (h.crc32 as number) < 0 || (h.crc32 as number) > 0xffffffff
  ) {
    throw corrupt(file, 'header has missing or malformed fields');
  }
  return { header: h as VersionHeader, bodyStart: end + 1 };
}

/** Decodes and checks a whole version file; throws `CORRUPT` on any mismatch. */
export function decodeVersion(bytes: Buffer, file: string): Version {
  const { header, bodyStart } = parseHeader(bytes, file);
  const body = bytes.subarray(bodyStart);
  if (body.byteLength !== header.size) throw corrupt(file, `segment is ${body.byteLength} bytes, header says ${header.size}`);
  if (crc32(body) !== header.crc32) throw corrupt(file, 'segment checksum mismatch');
  return {
    versionId: header.versionId,
    parentVersionId: header.parentVersionId,
    historySegment: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
  };
}
