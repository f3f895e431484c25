"""Rasa NLU components of the handoff extension (reference them by class path in a bot's
``config.yml``), e.g. ``handoff_channel.nlu.sentiment.SentimentAnalyzer``.

Importing this package does not import Rasa; the components' modules do."""
