/**
 * Faults of the operations commands that the storage's error codes do not describe. Damage found
 * by verify is not an error: it is a list of findings in the report.
 */
import { CodedError } from '../errors.js';

export type OpsErrorCode =
  /** The directory to verify or back up does not exist or holds no format.json. */
  | 'NOT_A_DATA_DIR'
  /** backup's destination already exists. */
  | 'DEST_EXISTS'
  /** backup's destination cannot hold a backup: inside the data directory, or its parent is missing. */
  | 'BAD_DEST'
  /** The copy did not verify; it was removed and DEST was not created. */
  | 'BACKUP_UNSOUND'
  /** migrate's destination holds clients already, or is a directory that is not empty. */
  | 'DEST_NOT_EMPTY'
  /** A migrated client does not read back as it was copied. */
  | 'MIGRATE_MISMATCH';

export class OpsError extends CodedError<OpsErrorCode> {}
