/**
 * etcd's mvcc operation counters: the ranges, puts and deletes of each store transaction, and the
 * transactions that held more than one of them. Plain numbers, read when metrics are scraped.
 */
export class MvccOpCounts {
  range = 0;
  put = 0;
  delete = 0;
  txn = 0;
  private opsInTxn = 0;

  /** A range read inside the current store transaction (a read, a compare, a previous value). */
  countRange(): void {
    this.range++;
    this.opsInTxn++;
  }

  countPut(): void {
    this.put++;
    this.opsInTxn++;
  }

  countDelete(): void {
    this.delete++;
    this.opsInTxn++;
  }

  /** Ends the current store transaction: etcd counts it as a txn when it held more than one operation. */
  endTxn(): void {
    if (this.opsInTxn > 1) this.txn++;
    this.opsInTxn = 0;
  }
}
