"""Reading, writing, preprocessing and synthesising RGB-D scans."""
