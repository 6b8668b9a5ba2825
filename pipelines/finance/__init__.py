"""Finance: Meta payouts, transactions and order payments, reconciled against the OMS."""
