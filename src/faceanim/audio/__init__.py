"""Speech in: log-mel features, voice activity, optional local speech encoders, the ``speak`` command."""
