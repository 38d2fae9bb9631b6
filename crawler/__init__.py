"""The Scrapy project that collects store listings and privacy policies into a snapshot directory."""
