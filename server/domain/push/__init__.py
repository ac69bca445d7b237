"""Web Push subscriptions: who wants which messages, for which districts, in which language."""
