"""Import and export of the file formats annotation tools read: CVAT for video, Label Studio, COCO, MOT, YOLO."""
