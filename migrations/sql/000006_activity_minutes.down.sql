DROP TABLE activity_minutes;
