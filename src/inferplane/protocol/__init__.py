"""The internal, canonical request / response / stream-event types every layer speaks."""
