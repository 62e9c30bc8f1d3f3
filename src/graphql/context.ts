/** What every resolver of one request shares. */
import type { LoadBudget } from './load-budget.js';

export interface GraphqlContext {
  /** The request carried `Authorization: Bearer <admin token>`. */
  readonly isAdmin: boolean;
  /** What this request may still load from storage. */
  readonly budget: LoadBudget;
}
