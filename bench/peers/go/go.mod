module myriadbench

go 1.22
