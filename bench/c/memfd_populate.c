// The host's floor, part 2: ways to get 256 MiB of memfd pages mapped writable
// (fallocate or pwrite of zeros, then MAP_POPULATE or MADV_POPULATE_WRITE),
// each filled, unmapped and freed. Build: gcc -O2 -o memfd_populate memfd_populate.c
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#define N (256UL << 20)
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static char zero[1 << 20];
int main(int argc,char**argv){
  int reps = argc>1?atoi(argv[1]):5;
  for (int v=0; v<4; v++){
    double a=0,b=0,c=0,d=0;
    for(int r=0;r<reps;r++){
      double t=now();
      int fd=memfd_create("f",MFD_CLOEXEC|MFD_ALLOW_SEALING);
      char *w;
      if(v==0){ fallocate(fd,0,0,N); }
      else if(v==1){ for(size_t o=0;o<N;o+=sizeof zero) pwrite(fd,zero,sizeof zero,o); }
      else if(v==2){ fallocate(fd,0,0,N); }
      else { ftruncate(fd,N); }
      double t1=now(); a+=t1-t;
      if(v==2||v==3){ w=mmap(0,N,PROT_READ|PROT_WRITE,MAP_SHARED,fd,0); if(madvise(w,N,MADV_POPULATE_WRITE)) perror("madv"); }
      else w=mmap(0,N,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_POPULATE,fd,0);
      double t2=now(); b+=t2-t1;
      memset(w,7,N);
      double t3=now(); c+=t3-t2;
      munmap(w,N); close(fd);
      d+=now()-t3;
    }
    const char*name[]={"fallocate+MAP_POPULATE","pwrite zeros+MAP_POPULATE","fallocate+POPULATE_WRITE","ftruncate+POPULATE_WRITE"};
    printf("%-28s alloc %.3f map %.3f memset %.3f free %.3f total %.3f s (%.0f MB/s)\n",name[v],a/reps,b/reps,c/reps,d/reps,(a+b+c+d)/reps,N/((a+b+c+d)/reps)/1e6);
  }
}
