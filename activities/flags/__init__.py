"""Flag activities over the configured flag backend (`warden.flagstore`)."""

from activities.flags.activities import FlagActivities

__all__ = ["FlagActivities"]
